//! The libvirt qemu hook driver (under construction)
