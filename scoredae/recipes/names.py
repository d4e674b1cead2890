"""The names and defaults of the trained-model recipes, importable without torch: the command line's
``--help`` reads them here, and the recipes take their defaults from here.

:data:`DEFAULT_STEPS` is one number per method, what ``--steps`` counts for it: Langevin steps
(``langevin``, ``posterior``), steps per level (``annealed``) or levels (the ODE solvers and the
posterior samplers with a diffusion prior). For the ODE solvers it is chosen from the generation
records of ``resunet_cfg`` (``scoredae/weights/resunet_cfg.json``, 1,000 samples a row): the
fewest calls within a few FID points of the solver's best.
"""

#: the architectures of ``scoredae train --model``, the keys of :data:`scoredae.nets.registry.MODELS`
ARCHITECTURES = ("conv", "drunet", "hybrid", "mlp", "resunet", "transformer", "unet")
#: the probability-flow ODE solvers of :func:`~scoredae.recipes.generation.diffusion_generation`
ODE_METHODS = ("heun", "euler", "dpm++2m", "dpm++3m", "ipndm", "unipc")
#: the diffusion-era generation methods, the ODE solvers and Kadkhodaie-Simoncelli
DIFFUSION_METHODS = (*ODE_METHODS, "ks")
#: the generation methods of ``scoredae sample``
GENERATION_METHODS = ("langevin", "annealed", *DIFFUSION_METHODS)
#: the posterior samplers with a diffusion prior of :func:`~scoredae.recipes.posterior.diffusion_posterior`
DIFFUSION_POSTERIOR_METHODS = ("dps", "pigdm", "tmpd", "ddrm", "diffpir", "smc", "ddnm", "mcgdiff", "fps", "daps",
                               "pnp_dm", "dpnp", "red_diff", "mgps", "dcps")
#: the posterior methods of ``scoredae sample``: PnP-ULA, then those with a diffusion prior
POSTERIOR_METHODS = ("posterior", *DIFFUSION_POSTERIOR_METHODS)
#: the inverse problems of :data:`scoredae.recipes.posterior.TASKS`
TASKS = ("denoise", "inpaint", "super-resolution", "deblur")
#: the default model and method of ``scoredae sample``: the best row at 10 denoiser calls or fewer
DEFAULT_MODEL, DEFAULT_METHOD = "resunet_cfg", "unipc"
#: the default of ``--steps`` for each method (module docstring)
DEFAULT_STEPS = {"langevin": 40, "annealed": 100, "posterior": 1000, "heun": 10, "euler": 18, "dpm++2m": 10,
                 "dpm++3m": 20, "ipndm": 20, "unipc": 10, **dict.fromkeys(DIFFUSION_POSTERIOR_METHODS, 100)}
