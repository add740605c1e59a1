//! Client library for the seL4 kernel-region memory server.
#![cfg_attr(not(test), no_std)]
