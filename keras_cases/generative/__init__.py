"""Generative models: a convolutional VAE, a DCGAN and a diffusion model that train on every backend.

- `vae`         the VAE: the KL term, the `Sampling` layer, encoder and decoder, its training
                and its study (ELBO, reconstructions, samples, latent map)
- `gan`         the DCGAN: generator and discriminator, the alternating training loop
                (resumable, see `checkpoint`) and its study
- `diffusion`   the diffusion model: the linear and cosine noise schedules, forward noising,
                the v/eps conversions and Min-SNR weights, the U-Net (a plain `fit` on
                NumPy-drawn (x_t, t) -> v or eps batches), DDIM sampling and its study
                (samples, denoising trajectory)
- `checkpoint`  the per-epoch checkpoint of a training loop that is not a `fit` (the GAN's)
- `quality`     sample quality: the Frechet distance in the features of a classifier trained here
- `case`        the case study: `python -m keras_cases.generative` (see its docstring)

Importing this package does not import Keras.
"""
