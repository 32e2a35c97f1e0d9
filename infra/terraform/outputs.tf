output "project_id" {
  description = "Project the backend runs in. infra/deploy.sh passes it to firebase deploy."
  value       = var.project_id
}

output "upload_url_endpoint" {
  description = "HTTPS URL that the app POSTs to for a signed upload URL."
  value       = google_cloudfunctions2_function.upload_url.service_config[0].uri
}

output "health_endpoint" {
  description = "HTTPS URL of the health function. Callers need an ID token of an account with run.invoker on it."
  value       = google_cloudfunctions2_function.health.service_config[0].uri
}

output "upload_bucket" {
  description = "Bucket the app uploads voice notes to."
  value       = google_storage_bucket.uploads.name
}

output "source_bucket" {
  description = "Bucket that holds the zipped function source."
  value       = google_storage_bucket.source.name
}

output "gemini_api_key_secret" {
  description = "Secret Manager secret id to add the Gemini API key to."
  value       = google_secret_manager_secret.gemini_api_key.secret_id
}

output "runtime_service_account" {
  description = "Service account the functions run as."
  value       = google_service_account.runtime.email
}

# Read by `infra/deploy.sh gcloud`. The values come from the deployed
# resources themselves, so the gcloud fallback redeploys exactly what
# Terraform configured.
output "functions" {
  description = "Deployment settings of each function, keyed by entry point."
  value = {
    for entry_point, function in {
      upload_url    = google_cloudfunctions2_function.upload_url
      process_audio = google_cloudfunctions2_function.process_audio
      health        = google_cloudfunctions2_function.health
      } : entry_point => {
      name                  = function.name
      region                = function.location
      runtime               = function.build_config[0].runtime
      entry_point           = function.build_config[0].entry_point
      build_service_account = function.build_config[0].service_account
      memory                = function.service_config[0].available_memory
      cpu                   = function.service_config[0].available_cpu
      timeout_seconds       = function.service_config[0].timeout_seconds
      min_instances         = function.service_config[0].min_instance_count
      max_instances         = function.service_config[0].max_instance_count
      concurrency           = function.service_config[0].max_instance_request_concurrency
      ingress_settings      = function.service_config[0].ingress_settings
      service_account       = function.service_config[0].service_account_email
      environment           = function.service_config[0].environment_variables
      secrets = {
        for secret in function.service_config[0].secret_environment_variables :
        secret.key => "${secret.secret}:${secret.version}"
      }
      public = entry_point == "upload_url"
      event_trigger = length(function.event_trigger) == 0 ? null : {
        event_type      = function.event_trigger[0].event_type
        region          = function.event_trigger[0].trigger_region
        retry           = function.event_trigger[0].retry_policy == "RETRY_POLICY_RETRY"
        service_account = function.event_trigger[0].service_account_email
        bucket          = google_storage_bucket.uploads.name
      }
    }
  }
}
