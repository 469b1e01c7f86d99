# Artifacts: the model repository (models/<name>/<version>/, mounted read-only by
# the service) and the root of the Vertex AI pipeline runs (pipelines/).
resource "google_storage_bucket" "artifacts" {
  name                        = "${var.project_id}-${var.name}-artifacts"
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = !var.deletion_protection

  versioning {
    enabled = true
  }

  # Old versions of overwritten objects (a re-published model, a pipeline rerun).
  lifecycle_rule {
    condition {
      num_newer_versions = 3
      with_state         = "ARCHIVED"
    }
    action {
      type = "Delete"
    }
  }

  depends_on = [google_project_service.enabled]
}
