locals {
  model_mount = "/mnt/artifacts"

  # The server's settings (docs/serving-production.md); the image sets host, port
  # and the data folders.
  server_env = {
    RECOPS_MODEL_REPOSITORY = "${local.model_mount}/models"
    RECOPS_WORKERS          = tostring(var.cpu)
    RECOPS_LOG_FORMAT       = "json"
    RECOPS_ACCESS_LOG       = "true"
    # Cloud Run's front end is the only way in, and it sets X-Forwarded-For.
    RECOPS_FORWARDED_ALLOW_IPS = "*"
    # Cloud Run stops routing to an instance before SIGTERM and kills it 10 s later:
    # a short drain leaves time for the requests in flight.
    RECOPS_DRAIN_S = "2"
  }

  # Secret-backed variables: the admin token, and the backends' URLs unless the
  # server runs embedded (var.use_backends = false).
  secret_env = merge(
    { RECOPS_ADMIN_TOKEN = "admin-token" },
    var.use_backends ? { RECOPS_EVENT_LOG_URL = "event-log-url", RECOPS_STATE_URL = "state-url" } : {},
  )
}

resource "google_cloud_run_v2_service" "recops" {
  provider = google-beta

  name     = var.name
  location = var.region
  ingress  = "INGRESS_TRAFFIC_ALL"
  # Cloud Storage volumes were a preview feature of the 5.x provider's API.
  launch_stage = "BETA"

  template {
    service_account       = google_service_account.run.email
    execution_environment = "EXECUTION_ENVIRONMENT_GEN2"
    timeout               = "30s"

    scaling {
      min_instance_count = var.min_instances
      max_instance_count = var.max_instances
    }

    vpc_access {
      network_interfaces {
        network    = google_compute_network.recops.id
        subnetwork = google_compute_subnetwork.run.id
      }
      egress = "PRIVATE_RANGES_ONLY"
    }

    volumes {
      name = "artifacts"
      gcs {
        bucket    = google_storage_bucket.artifacts.name
        read_only = true
      }
    }

    containers {
      image = var.image

      ports {
        container_port = 8000
      }

      resources {
        limits = {
          cpu    = tostring(var.cpu)
          memory = var.memory
        }
        # Workers compute inline: CPU stays allocated between requests.
        cpu_idle = false
      }

      dynamic "env" {
        for_each = local.server_env
        content {
          name  = env.key
          value = env.value
        }
      }

      dynamic "env" {
        for_each = local.secret_env
        content {
          name = env.key
          value_source {
            secret_key_ref {
              secret  = google_secret_manager_secret.recops[env.value].secret_id
              version = "latest"
            }
          }
        }
      }

      volume_mounts {
        name       = "artifacts"
        mount_path = local.model_mount
      }

      # Ready once the model is loaded and the event log replayed.
      startup_probe {
        http_get {
          path = "/readyz"
        }
        period_seconds    = 5
        timeout_seconds   = 3
        failure_threshold = 60
      }

      liveness_probe {
        http_get {
          path = "/healthz"
        }
        period_seconds    = 15
        timeout_seconds   = 5
        failure_threshold = 3
      }
    }
  }

  traffic {
    type    = "TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST"
    percent = 100
  }

  lifecycle {
    precondition {
      condition     = var.use_backends || var.max_instances == 1
      error_message = "Embedded (use_backends = false), each instance has its own event log and state: set max_instances = 1."
    }
    # The deploy workflow rolls out each new image; Terraform must not roll it back.
    ignore_changes = [
      template[0].containers[0].image,
      client,
      client_version,
    ]
  }

  depends_on = [
    google_secret_manager_secret_iam_member.run_reads,
    google_secret_manager_secret_version.recops,
    google_storage_bucket_iam_member.run_reads_artifacts,
  ]
}
