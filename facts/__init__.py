"""pyinfra facts of xen2kvm, one module per tool (``xen``, ...), named ``<Tool><Thing>``."""
