# All three functions deploy the same archive, and the entry point picks the
# function in main.py. Each one reads GEMINI_API_KEY, because
# functions/config.py rejects EXTRACTOR=gemini without a key, even in
# functions that never call Gemini.

resource "google_cloudfunctions2_function" "upload_url" {
  name     = "${local.name}-upload-url"
  project  = var.project_id
  location = var.region

  build_config {
    runtime         = "python312"
    entry_point     = "upload_url"
    service_account = var.build_service_account

    source {
      storage_source {
        bucket = google_storage_bucket.source.name
        object = google_storage_bucket_object.source.name
      }
    }
  }

  service_config {
    available_memory                 = "512Mi"
    available_cpu                    = "1"
    timeout_seconds                  = 60
    min_instance_count               = 0
    max_instance_count               = 10
    max_instance_request_concurrency = 10
    ingress_settings                 = "ALLOW_ALL"
    all_traffic_on_latest_revision   = true
    service_account_email            = google_service_account.runtime.email

    environment_variables = merge(local.common_env, {
      FUNCTION_TIMEOUT_SECONDS = 60
    })

    secret_environment_variables {
      key        = "GEMINI_API_KEY"
      project_id = var.project_id
      secret     = google_secret_manager_secret.gemini_api_key.secret_id
      version    = var.gemini_api_key_secret_version
    }
  }

  depends_on = [google_project_service.enabled]
}

resource "google_cloudfunctions2_function" "process_audio" {
  name     = "${local.name}-process-audio"
  project  = var.project_id
  location = var.region

  build_config {
    runtime         = "python312"
    entry_point     = "process_audio"
    service_account = var.build_service_account

    source {
      storage_source {
        bucket = google_storage_bucket.source.name
        object = google_storage_bucket_object.source.name
      }
    }
  }

  service_config {
    available_memory = var.process_audio_memory
    available_cpu    = "1"
    timeout_seconds  = var.process_audio_timeout_seconds

    # At most three notes are processed at once, one per instance, which caps
    # concurrent Gemini requests and the memory each note needs.
    min_instance_count               = 0
    max_instance_count               = 3
    max_instance_request_concurrency = 1

    # Cloud Run's ingress documentation counts Eventarc deliveries from the
    # same project as internal traffic, so nothing else can reach this service.
    ingress_settings               = "ALLOW_INTERNAL_ONLY"
    all_traffic_on_latest_revision = true
    service_account_email          = google_service_account.runtime.email

    environment_variables = merge(local.common_env, {
      FUNCTION_TIMEOUT_SECONDS = var.process_audio_timeout_seconds
    })

    secret_environment_variables {
      key        = "GEMINI_API_KEY"
      project_id = var.project_id
      secret     = google_secret_manager_secret.gemini_api_key.secret_id
      version    = var.gemini_api_key_secret_version
    }
  }

  event_trigger {
    event_type            = "google.cloud.storage.object.v1.finalized"
    trigger_region        = lower(google_storage_bucket.uploads.location)
    service_account_email = google_service_account.trigger.email

    # Eventarc redelivers an event whose execution failed. The function
    # acknowledges events older than MAX_EVENT_AGE_SECONDS (default 3600) and
    # marks their note failed, which ends the retries. A retry overwrites the
    # same task documents, because task ids derive from the note id.
    retry_policy = "RETRY_POLICY_RETRY"

    event_filters {
      attribute = "bucket"
      value     = google_storage_bucket.uploads.name
    }
  }

  # Eventarc checks these grants when it creates the trigger.
  depends_on = [
    google_project_service.enabled,
    google_project_iam_member.trigger_event_receiver,
    google_project_iam_member.gcs_agent_pubsub_publisher,
  ]
}

resource "google_cloudfunctions2_function" "health" {
  name     = "${local.name}-health"
  project  = var.project_id
  location = var.region

  build_config {
    runtime         = "python312"
    entry_point     = "health"
    service_account = var.build_service_account

    source {
      storage_source {
        bucket = google_storage_bucket.source.name
        object = google_storage_bucket_object.source.name
      }
    }
  }

  service_config {
    available_memory                 = "512Mi"
    available_cpu                    = "1"
    timeout_seconds                  = 30
    min_instance_count               = 0
    max_instance_count               = 1
    max_instance_request_concurrency = 1
    # Cloud Scheduler in the same project counts as internal traffic too.
    ingress_settings               = "ALLOW_INTERNAL_ONLY"
    all_traffic_on_latest_revision = true
    service_account_email          = google_service_account.runtime.email

    environment_variables = merge(local.common_env, {
      FUNCTION_TIMEOUT_SECONDS = 30
    })

    secret_environment_variables {
      key        = "GEMINI_API_KEY"
      project_id = var.project_id
      secret     = google_secret_manager_secret.gemini_api_key.secret_id
      version    = var.gemini_api_key_secret_version
    }
  }

  depends_on = [google_project_service.enabled]
}
