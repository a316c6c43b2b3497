"""pyinfra operations of xen2kvm, one module per concern, twins of the modules in ``facts/``."""
