// Compiled only to produce the shared precompiled header of the test suites.
