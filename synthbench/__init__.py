"synthbench: a Jupyter-first workbench for synthetic fine-tuning data."
__version__ = "0.0.1"
