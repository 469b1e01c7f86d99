# Cloud SQL and Memorystore have private addresses only; Cloud Run reaches them
# through Direct VPC egress into this subnet (no Serverless VPC Access connector).
resource "google_compute_network" "recops" {
  name                    = var.name
  auto_create_subnetworks = false

  depends_on = [google_project_service.enabled]
}

resource "google_compute_subnetwork" "run" {
  name                     = "${var.name}-run"
  region                   = var.region
  network                  = google_compute_network.recops.id
  ip_cidr_range            = var.subnet_cidr
  private_ip_google_access = true
}

# Private services access: the peering range Cloud SQL and Memorystore take addresses from.
resource "google_compute_global_address" "private_services" {
  name          = "${var.name}-private-services"
  purpose       = "VPC_PEERING"
  address_type  = "INTERNAL"
  prefix_length = 16
  network       = google_compute_network.recops.id
}

resource "google_service_networking_connection" "private_services" {
  network                 = google_compute_network.recops.id
  service                 = "servicenetworking.googleapis.com"
  reserved_peering_ranges = [google_compute_global_address.private_services.name]
}
