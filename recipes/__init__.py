"""The shipped recipes (YAML). This folder is installed as the package ``resistkit.recipe_files``,
so ``resistkit run NAME`` finds them in a wheel too: ``resistkit recipes list`` shows them."""
