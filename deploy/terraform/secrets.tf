# Every credential lives in Secret Manager; the service reads its own by reference
# and no value is written to the Cloud Run configuration.

resource "random_password" "admin_token" {
  length  = 40
  special = false
}

resource "random_password" "database" {
  length  = 32
  special = false
}

locals {
  # for_each takes the names: Terraform refuses sensitive values as for_each keys.
  secret_names = toset(["admin-token", "event-log-url", "state-url"])
  secret_values = {
    "admin-token" = random_password.admin_token.result
    # The server's event_log_url and state_url; Cloud SQL accepts encrypted connections only.
    "event-log-url" = "postgresql://${google_sql_user.recops.name}:${random_password.database.result}@${google_sql_database_instance.recops.private_ip_address}:5432/${google_sql_database.recops.name}?sslmode=require"
    "state-url"     = "redis://:${google_redis_instance.state.auth_string}@${google_redis_instance.state.host}:${google_redis_instance.state.port}/0"
  }
}

resource "google_secret_manager_secret" "recops" {
  for_each = local.secret_names

  secret_id = "${var.name}-${each.key}"
  replication {
    auto {}
  }

  depends_on = [google_project_service.enabled]
}

resource "google_secret_manager_secret_version" "recops" {
  for_each = local.secret_names

  secret      = google_secret_manager_secret.recops[each.key].id
  secret_data = local.secret_values[each.key]
}

resource "google_secret_manager_secret_iam_member" "run_reads" {
  for_each = local.secret_names

  secret_id = google_secret_manager_secret.recops[each.key].id
  role      = "roles/secretmanager.secretAccessor"
  member    = "serviceAccount:${google_service_account.run.email}"
}
