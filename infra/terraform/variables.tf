variable "project_id" {
  description = "Google Cloud project id that hosts the backend and its Firebase project."
  type        = string
}

variable "region" {
  description = "Region of the functions, the upload bucket, the Eventarc trigger and the Cloud Scheduler job."
  type        = string
  default     = "europe-west1"
}

variable "upload_bucket_name" {
  description = "Name of the voice-note upload bucket. null means \"<project_id>-voice-notes\"."
  type        = string
  default     = null
}

variable "cors_origins" {
  description = "Web origins allowed to PUT to the signed upload URLs, such as https://app.example.com. Native mobile apps need none."
  type        = list(string)

  validation {
    condition     = alltrue([for origin in var.cors_origins : can(regex("^(https://[^/*]+|http://(localhost|127\\.0\\.0\\.1)(:[0-9]+)?)$", origin))])
    error_message = "Each CORS origin must be an https:// origin without a path or wildcard, or an http://localhost origin for development."
  }
}

variable "voice_note_retention_days" {
  description = "Days after which Cloud Storage deletes an uploaded voice note, processed or not."
  type        = number
  default     = 7

  validation {
    condition     = var.voice_note_retention_days >= 1 && floor(var.voice_note_retention_days) == var.voice_note_retention_days
    error_message = "voice_note_retention_days must be a whole number of at least 1."
  }
}

variable "gemini_api_key_secret_id" {
  description = "Secret Manager secret id that holds the Gemini API key. Terraform creates the secret, and its value is added with gcloud so the key never enters Terraform state."
  type        = string
  default     = "gemini-api-key"
}

variable "gemini_api_key_secret_version" {
  description = "Secret version the functions read: \"latest\" or a version number. A new version reaches only instances started after it is added."
  type        = string
  default     = "latest"
}

variable "gemini_model" {
  description = "Gemini model id passed to the functions as GEMINI_MODEL."
  type        = string
  default     = "gemini-3.5-flash-lite"
}

variable "gemini_attempt_timeout_seconds" {
  description = "Deadline in seconds of one Gemini request (GEMINI_ATTEMPT_TIMEOUT_SECONDS)."
  type        = number
  default     = 120

  validation {
    condition     = var.gemini_attempt_timeout_seconds >= 1 && var.gemini_attempt_timeout_seconds < var.process_audio_timeout_seconds
    error_message = "gemini_attempt_timeout_seconds must be at least 1 and below process_audio_timeout_seconds, so a Gemini request ends before the function is stopped."
  }
}

variable "process_audio_timeout_seconds" {
  description = "Timeout of process_audio in seconds. Also passed to it as FUNCTION_TIMEOUT_SECONDS, so the code knows its own deadline."
  type        = number
  default     = 540

  validation {
    # 540 s is the maximum for event-driven Cloud Functions (2nd gen).
    condition     = var.process_audio_timeout_seconds >= 60 && var.process_audio_timeout_seconds <= 540
    error_message = "process_audio_timeout_seconds must be between 60 and 540, the maximum for event-driven functions."
  }
}

variable "process_audio_memory" {
  description = "Memory of process_audio, such as 1Gi. It holds the whole voice note (up to max_upload_bytes) while it is sent to Gemini."
  type        = string
  default     = "1Gi"
}

variable "max_upload_bytes" {
  description = "Largest voice note in bytes that a signed upload URL accepts (MAX_UPLOAD_BYTES)."
  type        = number
  default     = 10485760
}

variable "max_audio_seconds" {
  description = "Longest voice note in seconds that process_audio accepts (MAX_AUDIO_SECONDS)."
  type        = number
  default     = 600
}

variable "upload_url_ttl_seconds" {
  description = "Lifetime in seconds of a signed upload URL (UPLOAD_URL_TTL_SECONDS)."
  type        = number
  default     = 900

  validation {
    # 60 s is the minimum the functions accept, and 604800 s (7 days) is the
    # maximum Cloud Storage allows for a V4 signed URL.
    condition     = var.upload_url_ttl_seconds >= 60 && var.upload_url_ttl_seconds <= 604800
    error_message = "upload_url_ttl_seconds must be between 60 and 604800."
  }
}

variable "uploads_per_hour" {
  description = "Uploads one user may start per clock hour (UPLOADS_PER_HOUR)."
  type        = number
  default     = 30
}

variable "uploads_per_day" {
  description = "Uploads one user may start per UTC day (UPLOADS_PER_DAY)."
  type        = number
  default     = 200
}

variable "log_level" {
  description = "Python log level of the functions (LOG_LEVEL)."
  type        = string
  default     = "INFO"

  validation {
    condition     = contains(["DEBUG", "INFO", "WARNING", "ERROR"], var.log_level)
    error_message = "log_level must be DEBUG, INFO, WARNING or ERROR."
  }
}

variable "source_archive_path" {
  description = "Path of the zip that infra/build_source.py builds. null means infra/build/source.zip."
  type        = string
  default     = null
}

variable "build_service_account" {
  description = "Service account that Cloud Build uses to build the functions, as projects/<project>/serviceAccounts/<email>. null uses the project's default build account."
  type        = string
  default     = null
}
