"""Recipes for trained models: generation (:mod:`~scoredae.recipes.generation`), the inverse-problem
tasks and posterior sampling (:mod:`~scoredae.recipes.posterior`), and the names and defaults they
share with the command line (:mod:`~scoredae.recipes.names`, importable without torch)."""
