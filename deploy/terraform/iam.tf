# Three identities, each with only what it uses:
#   run       - the Cloud Run service: reads the artifact bucket and its own secrets;
#   pipelines - the Vertex AI pipeline steps: pull the image, read and write the bucket;
#   deploy    - GitHub Actions (no key: Workload Identity Federation): push images,
#               deploy the service, submit pipeline runs as `pipelines`.

resource "google_service_account" "run" {
  account_id   = "${var.name}-run"
  display_name = "recops server (Cloud Run)"

  depends_on = [google_project_service.enabled]
}

resource "google_service_account" "pipelines" {
  account_id   = "${var.name}-pipelines"
  display_name = "recops training pipeline (Vertex AI Pipelines)"

  depends_on = [google_project_service.enabled]
}

resource "google_service_account" "deploy" {
  account_id   = "${var.name}-deploy"
  display_name = "recops CI/CD (GitHub Actions)"

  depends_on = [google_project_service.enabled]
}

# The server serves the model repository that the pipeline publishes: read only.
resource "google_storage_bucket_iam_member" "run_reads_artifacts" {
  bucket = google_storage_bucket.artifacts.name
  role   = "roles/storage.objectViewer"
  member = "serviceAccount:${google_service_account.run.email}"
}

resource "google_storage_bucket_iam_member" "pipelines_write_artifacts" {
  bucket = google_storage_bucket.artifacts.name
  role   = "roles/storage.objectAdmin"
  member = "serviceAccount:${google_service_account.pipelines.email}"
}

resource "google_artifact_registry_repository_iam_member" "pipelines_pull" {
  location   = google_artifact_registry_repository.recops.location
  repository = google_artifact_registry_repository.recops.name
  role       = "roles/artifactregistry.reader"
  member     = "serviceAccount:${google_service_account.pipelines.email}"
}

# Vertex AI Pipelines runs each step as a job owned by the pipeline's service account.
resource "google_project_iam_member" "pipelines_vertex" {
  project = var.project_id
  role    = "roles/aiplatform.user"
  member  = "serviceAccount:${google_service_account.pipelines.email}"
}

resource "google_artifact_registry_repository_iam_member" "deploy_push" {
  location   = google_artifact_registry_repository.recops.location
  repository = google_artifact_registry_repository.recops.name
  role       = "roles/artifactregistry.writer"
  member     = "serviceAccount:${google_service_account.deploy.email}"
}

resource "google_cloud_run_v2_service_iam_member" "deploy_updates_service" {
  name     = google_cloud_run_v2_service.recops.name
  location = google_cloud_run_v2_service.recops.location
  role     = "roles/run.developer"
  member   = "serviceAccount:${google_service_account.deploy.email}"
}

# Deploying a revision that runs as `run`, and submitting a pipeline that runs as
# `pipelines`, both need permission to act as that account - on it alone.
resource "google_service_account_iam_member" "deploy_acts_as_run" {
  service_account_id = google_service_account.run.name
  role               = "roles/iam.serviceAccountUser"
  member             = "serviceAccount:${google_service_account.deploy.email}"
}

resource "google_service_account_iam_member" "deploy_acts_as_pipelines" {
  service_account_id = google_service_account.pipelines.name
  role               = "roles/iam.serviceAccountUser"
  member             = "serviceAccount:${google_service_account.deploy.email}"
}

resource "google_project_iam_member" "deploy_submits_pipelines" {
  project = var.project_id
  role    = "roles/aiplatform.user"
  member  = "serviceAccount:${google_service_account.deploy.email}"
}

resource "google_cloud_run_v2_service_iam_member" "public" {
  count = var.allow_public_access ? 1 : 0

  name     = google_cloud_run_v2_service.recops.name
  location = google_cloud_run_v2_service.recops.location
  role     = "roles/run.invoker"
  member   = "allUsers"
}
