"""The model families' names, without importing scikit-learn (for argument parsers)."""
AUTO = "auto"
FAMILY_NAMES = ("linear", "mlp", "gbm", "forest", "hgb")
CHOICES = (*FAMILY_NAMES, AUTO)
