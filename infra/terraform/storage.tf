resource "google_storage_bucket" "uploads" {
  name     = local.upload_bucket
  project  = var.project_id
  location = var.region

  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"

  # Keep voice notes if someone runs `terraform destroy` by mistake. To remove
  # the bucket, empty it by hand first.
  force_destroy = false

  # Browsers send a preflight before the PUT because the signed URL requires
  # the Content-Type and x-goog-* headers that functions/uploads/signing.py
  # signs into it. Without web origins the bucket gets no CORS policy at all.
  dynamic "cors" {
    for_each = length(var.cors_origins) > 0 ? [var.cors_origins] : []
    content {
      origin          = cors.value
      method          = ["PUT"]
      response_header = ["Content-Type", "x-goog-content-length-range", "x-goog-if-generation-match"]
      max_age_seconds = 3600
    }
  }

  # A safety net: process_audio deletes the audio it has processed, and this
  # rule removes whatever is left, such as notes that failed.
  lifecycle_rule {
    condition {
      age            = var.voice_note_retention_days
      matches_prefix = [local.voice_note_prefix]
    }
    action {
      type = "Delete"
    }
  }

  depends_on = [google_project_service.enabled]
}

# Holds the zipped function source that Cloud Build reads.
resource "google_storage_bucket" "source" {
  name     = "${var.project_id}-${local.name}-source"
  project  = var.project_id
  location = var.region

  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = true

  depends_on = [google_project_service.enabled]
}

# The object name carries the archive's MD5, so a changed source makes a new
# object and Terraform redeploys the functions. An unchanged one deploys nothing.
resource "google_storage_bucket_object" "source" {
  name   = "functions/source-${filemd5(local.source_archive)}.zip"
  bucket = google_storage_bucket.source.name
  source = local.source_archive
}
