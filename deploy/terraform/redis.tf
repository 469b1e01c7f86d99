# Redis for the online user state shared by every instance.
# AUTH on; traffic stays inside the VPC (transit encryption needs the server CA in
# the client: turn it on with a rediss:// state_url and the CA in the image).
resource "google_redis_instance" "state" {
  name               = "${var.name}-state"
  region             = var.region
  tier               = var.redis_tier
  memory_size_gb     = var.redis_memory_gb
  redis_version      = "REDIS_7_2"
  authorized_network = google_compute_network.recops.id
  connect_mode       = "PRIVATE_SERVICE_ACCESS"
  auth_enabled       = true

  # Full memory evicts the least recently used keys, as the in-process state
  # evicts the least recently active users.
  redis_configs = {
    "maxmemory-policy" = "allkeys-lru"
  }

  depends_on = [google_service_networking_connection.private_services]
}
