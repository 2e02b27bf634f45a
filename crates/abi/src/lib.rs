//! The ABI-stable plugin boundary of virt-hooks (under construction)
