# Identity of the three functions.
resource "google_service_account" "runtime" {
  project      = var.project_id
  account_id   = "${local.name}-runtime"
  display_name = "Braindumpster functions runtime"

  depends_on = [google_project_service.enabled]
}

# Identity Eventarc uses to deliver storage events to process_audio.
resource "google_service_account" "trigger" {
  project      = var.project_id
  account_id   = "${local.name}-trigger"
  display_name = "Braindumpster Eventarc trigger"

  depends_on = [google_project_service.enabled]
}

# Identity Cloud Scheduler uses to call the private health function.
resource "google_service_account" "scheduler" {
  project      = var.project_id
  account_id   = "${local.name}-scheduler"
  display_name = "Braindumpster health check caller"

  depends_on = [google_project_service.enabled]
}

# Runtime: read and write voice notes, tasks, quota and health documents.
# Firestore has no narrower grant than the project.
resource "google_project_iam_member" "runtime_datastore_user" {
  project = var.project_id
  role    = "roles/datastore.user"
  member  = "serviceAccount:${google_service_account.runtime.email}"
}

# Runtime: read the uploaded audio and delete it after processing. Granted on
# the upload bucket only.
resource "google_storage_bucket_iam_member" "runtime_object_admin" {
  bucket = google_storage_bucket.uploads.name
  role   = "roles/storage.objectAdmin"
  member = "serviceAccount:${google_service_account.runtime.email}"
}

# Runtime: read the Gemini API key, and no other secret.
resource "google_secret_manager_secret_iam_member" "runtime_gemini_key" {
  project   = var.project_id
  secret_id = google_secret_manager_secret.gemini_api_key.secret_id
  role      = "roles/secretmanager.secretAccessor"
  member    = "serviceAccount:${google_service_account.runtime.email}"
}

# Runtime: sign upload URLs with IAM signBlob as itself. A function has no
# private key file, so V4 signing goes through the IAM Credentials API.
resource "google_service_account_iam_member" "runtime_signs_as_itself" {
  service_account_id = google_service_account.runtime.name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = "serviceAccount:${google_service_account.runtime.email}"
}

# Trigger: receive events from Eventarc. The role exists only at project level.
resource "google_project_iam_member" "trigger_event_receiver" {
  project = var.project_id
  role    = "roles/eventarc.eventReceiver"
  member  = "serviceAccount:${google_service_account.trigger.email}"
}

# Trigger: invoke process_audio, and no other service.
resource "google_cloud_run_v2_service_iam_member" "trigger_invokes_process_audio" {
  project  = var.project_id
  location = var.region
  name     = google_cloudfunctions2_function.process_audio.name
  role     = "roles/run.invoker"
  member   = "serviceAccount:${google_service_account.trigger.email}"
}

# Scheduler: invoke health, and no other service.
resource "google_cloud_run_v2_service_iam_member" "scheduler_invokes_health" {
  project  = var.project_id
  location = var.region
  name     = google_cloudfunctions2_function.health.name
  role     = "roles/run.invoker"
  member   = "serviceAccount:${google_service_account.scheduler.email}"
}

# Anyone may call upload_url: the function itself verifies the Firebase ID
# token and rejects requests without a valid one.
resource "google_cloud_run_v2_service_iam_member" "public_invokes_upload_url" {
  project  = var.project_id
  location = var.region
  name     = google_cloudfunctions2_function.upload_url.name
  role     = "roles/run.invoker"
  member   = "allUsers"
}

data "google_storage_project_service_account" "gcs_agent" {
  project = var.project_id
}

# Cloud Storage service agent: publish the object-finalized notifications
# that Eventarc turns into events for process_audio.
resource "google_project_iam_member" "gcs_agent_pubsub_publisher" {
  project = var.project_id
  role    = "roles/pubsub.publisher"
  member  = "serviceAccount:${data.google_storage_project_service_account.gcs_agent.email_address}"
}
