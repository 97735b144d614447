"""The deploy layer: change sets, waiting, the concurrent executor, the guard, releases and rollback."""
