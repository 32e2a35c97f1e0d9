terraform {
  # 1.9 is the first release whose variable validations may refer to other
  # variables. variables.tf relies on that to keep the Gemini deadline inside
  # the function timeout.
  required_version = ">= 1.9.0"

  required_providers {
    google = {
      source = "hashicorp/google"
      # NOTE: checked only offline against the provider documentation, never
      # with `terraform validate`, which needs the provider binary.
      version = ">= 6.0, < 8.0"
    }
  }

  # State stays in a local file unless a backend is added here. A team should
  # add a `backend "gcs" {}` block, as infra/README.md describes.
}

provider "google" {
  project = var.project_id
  region  = var.region

  default_labels = local.labels
}
