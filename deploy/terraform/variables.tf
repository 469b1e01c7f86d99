variable "project_id" {
  description = "Google Cloud project that holds every resource."
  type        = string
}

variable "region" {
  description = "Region of Cloud Run, Cloud SQL, Memorystore, Artifact Registry and the bucket."
  type        = string
  default     = "europe-west1"
}

variable "name" {
  description = "Prefix of every resource name (service, repository, instances, accounts)."
  type        = string
  default     = "recops"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,18}[a-z0-9]$", var.name))
    error_message = "name must be 3-20 characters: lower-case letters, digits and '-', starting with a letter."
  }
}

variable "image" {
  description = "Image the service runs first; later deploys (the deploy workflow) replace it, and Terraform leaves it alone."
  type        = string
  default     = "us-docker.pkg.dev/cloudrun/container/hello"
}

variable "github_repository" {
  description = "GitHub repository (owner/name) whose workflows may deploy and train, through Workload Identity Federation."
  type        = string
}

variable "github_ref" {
  description = "The only Git ref whose workflow runs may act on the project."
  type        = string
  default     = "refs/heads/main"
}

variable "min_instances" {
  description = "Cloud Run instances kept warm (0 lets the service scale to zero; the first request then loads the model)."
  type        = number
  default     = 1
}

variable "max_instances" {
  description = "Upper bound on Cloud Run instances: stateless replicas on PostgreSQL and Redis; 1 when use_backends is false (each instance would keep its own event log)."
  type        = number
  default     = 3
}

variable "cpu" {
  description = "vCPUs per instance; the server runs one worker per vCPU."
  type        = number
  default     = 2
}

variable "memory" {
  description = "Memory per instance (model, index and online state; see state_max_bytes)."
  type        = string
  default     = "4Gi"
}

variable "use_backends" {
  description = "Run the server on Cloud SQL (event log, exposures, experiments) and Memorystore (online state) through RECOPS_EVENT_LOG_URL and RECOPS_STATE_URL; false runs it embedded (SQLite on the instance's in-memory disk, lost with the instance)."
  type        = bool
  default     = true
}

variable "db_tier" {
  description = "Cloud SQL machine tier (Enterprise edition)."
  type        = string
  default     = "db-custom-1-3840"
}

variable "db_high_availability" {
  description = "Regional (failover) Cloud SQL instance instead of a zonal one."
  type        = bool
  default     = false
}

variable "redis_tier" {
  description = "Memorystore tier: BASIC (one node) or STANDARD_HA (replicated)."
  type        = string
  default     = "BASIC"

  validation {
    condition     = contains(["BASIC", "STANDARD_HA"], var.redis_tier)
    error_message = "redis_tier must be BASIC or STANDARD_HA."
  }
}

variable "redis_memory_gb" {
  description = "Memorystore capacity in GiB (the online users' recent histories)."
  type        = number
  default     = 1
}

variable "subnet_cidr" {
  description = "Range of the subnet Cloud Run's Direct VPC egress uses to reach Cloud SQL and Redis."
  type        = string
  default     = "10.8.0.0/24"
}

variable "deletion_protection" {
  description = "Refuse to destroy the database and to delete a non-empty artifact bucket."
  type        = bool
  default     = true
}

variable "allow_public_access" {
  description = "Let anyone call the service (allUsers as invoker); false keeps it to authenticated callers with roles/run.invoker."
  type        = bool
  default     = false
}
