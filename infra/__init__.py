"""The deployment: the template, the packages finishing step, checkovs skips."""
