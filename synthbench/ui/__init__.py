"""Widgets for a person: human review (`ui.review`) and the prompt lab (`ui.promptlab`)."""
