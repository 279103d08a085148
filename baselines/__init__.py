"""The eight baseline server rules of the Fed-MA benchmark, one file each (registered in harness.core.registry)."""
