"""Customer-tag warehouse: synthetic landing zone, dbt build helpers, LTV model, quality gate."""

from pathlib import Path

# The repository root holds dbt_project.yml and profiles.yml; the package is installed editable.
PROJECT_DIR = Path(__file__).resolve().parents[2]
