// The lane operations are header-only (include/OptimLanes.h); a target needs one source file.
