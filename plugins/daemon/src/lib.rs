//! The libvirt daemon hook driver (under construction)
