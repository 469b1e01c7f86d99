# The bucket that holds the main configuration's Terraform state. Applied once, with
# local state, before `terraform init` in the parent folder (see deploy/README.md).
terraform {
  required_version = ">= 1.5"

  required_providers {
    google = {
      source  = "hashicorp/google"
      version = "~> 5.0"
    }
  }
}

provider "google" {
  project = var.project_id
  region  = var.region
}

variable "project_id" {
  description = "Google Cloud project that holds the state bucket."
  type        = string
}

variable "region" {
  description = "Location of the state bucket."
  type        = string
  default     = "europe-west1"
}

variable "name" {
  description = "Prefix of the bucket name: <project_id>-<name>-tfstate."
  type        = string
  default     = "recops"
}

resource "google_project_service" "storage" {
  service            = "storage.googleapis.com"
  disable_on_destroy = false
}

resource "google_storage_bucket" "state" {
  name                        = "${var.project_id}-${var.name}-tfstate"
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  # Destroying the state by accident would orphan every resource it tracks.
  force_destroy = false

  # Every state write keeps the previous one: a bad apply can be rolled back.
  versioning {
    enabled = true
  }

  lifecycle_rule {
    condition {
      num_newer_versions = 20
      with_state         = "ARCHIVED"
    }
    action {
      type = "Delete"
    }
  }

  lifecycle {
    prevent_destroy = true
  }

  depends_on = [google_project_service.storage]
}

output "state_bucket" {
  description = "Name of the state bucket: terraform init -backend-config=\"bucket=<this>\" in deploy/terraform."
  value       = google_storage_bucket.state.name
}
