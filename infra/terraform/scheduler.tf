# Calls health every five minutes, so the function writes _health/latest and
# its daily history even when nobody uploads.
resource "google_cloud_scheduler_job" "health" {
  name             = "${local.name}-health"
  project          = var.project_id
  region           = var.region
  description      = "Calls the Braindumpster health function."
  schedule         = "*/5 * * * *"
  time_zone        = "Etc/UTC"
  attempt_deadline = "60s"

  # The next run comes five minutes later anyway.
  retry_config {
    retry_count = 0
  }

  http_target {
    http_method = "GET"
    uri         = google_cloudfunctions2_function.health.service_config[0].uri

    # health accepts only authenticated calls, and the token's audience is
    # the URL of the service it calls.
    oidc_token {
      service_account_email = google_service_account.scheduler.email
      audience              = google_cloudfunctions2_function.health.service_config[0].uri
    }
  }

  depends_on = [
    google_project_service.enabled,
    google_cloud_run_v2_service_iam_member.scheduler_invokes_health,
  ]
}
