//! Integration tests of virt-hooks-exec.
