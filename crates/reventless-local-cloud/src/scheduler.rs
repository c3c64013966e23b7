//! Fires the Scheduler entries found on the emulator at their rate.
