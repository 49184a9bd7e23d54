"""The training wizard (Model ▸ Train a model…): trains, evaluates, installs and recalibrates models with the
shared engine in child processes. ``wizard.TrainingWizard`` is the window, ``menu.TrainingMenu`` its menu
entries; the pages live in their own modules. See docs/wizard.md."""
