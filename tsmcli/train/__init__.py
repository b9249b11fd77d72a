"""Training: parameter groups, schedules and the loop behind `tsm train`."""
