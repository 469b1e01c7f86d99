terraform {
  required_version = ">= 1.5"

  required_providers {
    google = {
      source  = "hashicorp/google"
      version = "~> 5.0"
    }
    # The Cloud Run service mounts the artifact bucket (a Cloud Storage volume), a
    # field the 5.x GA provider does not have: that one resource uses google-beta.
    google-beta = {
      source  = "hashicorp/google-beta"
      version = "~> 5.0"
    }
    random = {
      source  = "hashicorp/random"
      version = "~> 3.6"
    }
  }

  # State lives in the bucket that bootstrap/ creates; give its name at init:
  #   terraform init -backend-config="bucket=<state_bucket output of bootstrap>"
  backend "gcs" {
    prefix = "recops"
  }
}

provider "google" {
  project = var.project_id
  region  = var.region
}

provider "google-beta" {
  project = var.project_id
  region  = var.region
}
