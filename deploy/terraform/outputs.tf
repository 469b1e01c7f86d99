output "service_url" {
  description = "HTTPS address of the recops server."
  value       = google_cloud_run_v2_service.recops.uri
}

output "service_name" {
  description = "Cloud Run service name (the deploy workflow's CLOUD_RUN_SERVICE)."
  value       = google_cloud_run_v2_service.recops.name
}

output "image_repository" {
  description = "Where images are pushed: <region>-docker.pkg.dev/<project>/<repository>."
  value       = "${var.region}-docker.pkg.dev/${var.project_id}/${google_artifact_registry_repository.recops.repository_id}"
}

output "artifact_bucket" {
  description = "Bucket of the model repository (models/) and the pipeline runs (pipelines/)."
  value       = google_storage_bucket.artifacts.name
}

output "model_repository" {
  description = "The model repository the service serves (mounted at /mnt/artifacts/models)."
  value       = "gs://${google_storage_bucket.artifacts.name}/models"
}

output "pipeline_root" {
  description = "Root of the Vertex AI pipeline runs."
  value       = "gs://${google_storage_bucket.artifacts.name}/pipelines"
}

output "workload_identity_provider" {
  description = "Full name of the GitHub OIDC provider, for google-github-actions/auth."
  value       = google_iam_workload_identity_pool_provider.github.name
}

output "deploy_service_account" {
  description = "Account the GitHub workflows act as."
  value       = google_service_account.deploy.email
}

output "pipelines_service_account" {
  description = "Account the Vertex AI pipeline steps run as."
  value       = google_service_account.pipelines.email
}

output "run_service_account" {
  description = "Account the Cloud Run service runs as."
  value       = google_service_account.run.email
}

output "database_instance" {
  description = "Cloud SQL connection name (project:region:instance)."
  value       = google_sql_database_instance.recops.connection_name
}

output "database_private_ip" {
  description = "Private address of PostgreSQL inside the VPC."
  value       = google_sql_database_instance.recops.private_ip_address
}

output "redis_host" {
  description = "Private address and port of Memorystore Redis."
  value       = "${google_redis_instance.state.host}:${google_redis_instance.state.port}"
}

output "secrets" {
  description = "Secret Manager secret per credential (admin token, event log URL, state URL); values are never outputs."
  value       = { for key, secret in google_secret_manager_secret.recops : key => secret.secret_id }
}

output "github_variables" {
  description = "Repository variables the deploy and train workflows read (Settings > Secrets and variables > Actions > Variables)."
  value = {
    GCP_PROJECT_ID                 = var.project_id
    GCP_REGION                     = var.region
    GCP_WORKLOAD_IDENTITY_PROVIDER = google_iam_workload_identity_pool_provider.github.name
    GCP_DEPLOY_SERVICE_ACCOUNT     = google_service_account.deploy.email
    GCP_PIPELINES_SERVICE_ACCOUNT  = google_service_account.pipelines.email
    IMAGE_REPOSITORY               = "${var.region}-docker.pkg.dev/${var.project_id}/${google_artifact_registry_repository.recops.repository_id}"
    CLOUD_RUN_SERVICE              = google_cloud_run_v2_service.recops.name
    ARTIFACT_BUCKET                = google_storage_bucket.artifacts.name
  }
}
