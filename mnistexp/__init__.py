"""mnistexp: which target encoding, loss and input scaling should an MNIST MLP use?

The package is layered one way (see README "Architecture"): config -> data -> scaling ->
targets -> losses -> model -> optim -> trainer -> metrics -> runs -> compare/plots, with the
Click CLI (``mnistexp.cli``) on top. Importing the package is cheap: numpy and friends are
imported by the modules that need them, never here.
"""

__version__ = "0.1.0"
