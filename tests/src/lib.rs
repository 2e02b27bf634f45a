//! End-to-end tests of virt-hooks (under construction)
