"""Installs the rehearsal's cluster DNS (``kubeemu_dns``) in processes started with this
folder on PYTHONPATH and ``KUBEEMU_API`` set (emulated pods and the operator)."""

import os

if os.environ.get("KUBEEMU_API"):
    import kubeemu_dns

    kubeemu_dns.install()
