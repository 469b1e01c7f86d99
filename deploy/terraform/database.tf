# PostgreSQL for the event and exposure log and the experiment store. Private IP
# only, TLS required, backups with point-in-time recovery.
resource "google_sql_database_instance" "recops" {
  name                = "${var.name}-pg"
  region              = var.region
  database_version    = "POSTGRES_16"
  deletion_protection = var.deletion_protection

  settings {
    edition                     = "ENTERPRISE"
    tier                        = var.db_tier
    availability_type           = var.db_high_availability ? "REGIONAL" : "ZONAL"
    disk_autoresize             = true
    deletion_protection_enabled = var.deletion_protection

    ip_configuration {
      ipv4_enabled    = false
      private_network = google_compute_network.recops.id
      ssl_mode        = "ENCRYPTED_ONLY"
    }

    backup_configuration {
      enabled                        = true
      point_in_time_recovery_enabled = true
    }
  }

  depends_on = [google_service_networking_connection.private_services]
}

resource "google_sql_database" "recops" {
  name     = "recops"
  instance = google_sql_database_instance.recops.name
}

resource "google_sql_user" "recops" {
  name     = "recops"
  instance = google_sql_database_instance.recops.name
  password = random_password.database.result
}
