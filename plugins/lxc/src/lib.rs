//! The libvirt lxc hook driver (under construction)
