"""Service level objectives: error budgets, burn-rate alerts and Prometheus rules."""
