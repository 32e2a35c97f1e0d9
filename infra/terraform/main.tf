locals {
  name          = "braindumpster"
  upload_bucket = coalesce(var.upload_bucket_name, "${var.project_id}-voice-notes")

  # The functions write objects under this prefix, and the lifecycle rule in
  # storage.tf deletes only what is under it.
  voice_note_prefix = "voice-notes/"

  source_archive = coalesce(var.source_archive_path, "${path.module}/../build/source.zip")

  labels = {
    app = local.name
  }

  # Settings every function reads through functions/config.py. Each function
  # adds FUNCTION_TIMEOUT_SECONDS equal to its own timeout in functions.tf.
  common_env = {
    GOOGLE_CLOUD_PROJECT           = var.project_id
    UPLOAD_BUCKET                  = local.upload_bucket
    EXTRACTOR                      = "gemini"
    GEMINI_MODEL                   = var.gemini_model
    GEMINI_ATTEMPT_TIMEOUT_SECONDS = var.gemini_attempt_timeout_seconds
    MAX_UPLOAD_BYTES               = var.max_upload_bytes
    MAX_AUDIO_SECONDS              = var.max_audio_seconds
    UPLOAD_URL_TTL_SECONDS         = var.upload_url_ttl_seconds
    UPLOADS_PER_HOUR               = var.uploads_per_hour
    UPLOADS_PER_DAY                = var.uploads_per_day
    SIGNING_SERVICE_ACCOUNT        = google_service_account.runtime.email
    LOG_LEVEL                      = var.log_level
  }

  services = [
    "artifactregistry.googleapis.com", # images that Cloud Build makes for the functions
    "cloudbuild.googleapis.com",
    "cloudfunctions.googleapis.com",
    "cloudscheduler.googleapis.com",
    "eventarc.googleapis.com",
    "firebaserules.googleapis.com", # firebase deploy of the security rules
    "firestore.googleapis.com",
    "iam.googleapis.com",
    "iamcredentials.googleapis.com", # signBlob for the signed upload URLs
    "pubsub.googleapis.com",         # transport of the Eventarc storage events
    "run.googleapis.com",            # 2nd gen functions run as Cloud Run services
    "secretmanager.googleapis.com",
    "storage.googleapis.com",
  ]
}

data "google_project" "this" {
  project_id = var.project_id
}

resource "google_project_service" "enabled" {
  for_each = toset(local.services)

  project = var.project_id
  service = each.value

  # Other workloads in the project may use the same APIs, so destroying this
  # configuration leaves them on.
  disable_on_destroy = false
}

# Only the secret is managed here. Add the key itself with
# `gcloud secrets versions add`, so it never appears in Terraform state.
resource "google_secret_manager_secret" "gemini_api_key" {
  project   = var.project_id
  secret_id = var.gemini_api_key_secret_id

  replication {
    auto {}
  }

  depends_on = [google_project_service.enabled]
}
