"""rnnopt: the optimizers used to train recurrent networks, written to be read."""

__version__ = "0.1.0"
