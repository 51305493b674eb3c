//! The four agents of plan Step 6 (filled in by the agents work).
