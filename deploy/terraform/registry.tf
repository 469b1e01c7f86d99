resource "google_artifact_registry_repository" "recops" {
  repository_id = var.name
  location      = var.region
  format        = "DOCKER"
  description   = "recops images (the server, and every step of the training pipeline)."

  # Keeps the registry from growing with every push to main.
  cleanup_policies {
    id     = "keep-recent"
    action = "KEEP"
    most_recent_versions {
      keep_count = 20
    }
  }
  cleanup_policies {
    id     = "delete-old"
    action = "DELETE"
    condition {
      older_than = "2592000s" # 30 days
    }
  }

  depends_on = [google_project_service.enabled]
}
