"""The program on a deployed machine: cameras, the model it serves, capture queue and sync, and
the local vision / ML-model services. It talks to the server over HTTP only (never ``store`` or
``server``) and never imports torch: packages run through :mod:`tagtrain.runtime`."""
