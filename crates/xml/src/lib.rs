//! The XML checks virt-hooks drivers share (under construction)
