#include <string.h>
#include <stdlib.h>
#include <png.h>
#include <stdio.h>

/// Writes an 8-bit grayscale or RGB image with libpng's simplified API (no setjmp needed).
/// Returns 0 on success, else a non-zero code; `message` gets libpng's text (up to 255 bytes).
static inline int gan_png_write(const char *path, const unsigned char *pixels, int width, int height,
                                int channels, char *message) {
    png_image image;
    memset(&image, 0, sizeof image);
    image.version = PNG_IMAGE_VERSION;
    image.width = (png_uint_32)width;
    image.height = (png_uint_32)height;
    image.format = channels == 3 ? PNG_FORMAT_RGB : PNG_FORMAT_GRAY;
    int ok = png_image_write_to_file(&image, path, 0, pixels, 0, NULL);
    if (!ok) {
        snprintf(message, 256, "%s", image.message);
        png_image_free(&image);
        return 1;
    }
    return 0;
}

/// Reads any PNG as 8-bit grayscale into a buffer the caller frees with free().
static inline unsigned char *gan_png_read_gray(const char *path, int *width, int *height, char *message) {
    png_image image;
    memset(&image, 0, sizeof image);
    image.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_file(&image, path)) {
        snprintf(message, 256, "%s", image.message);
        return NULL;
    }
    image.format = PNG_FORMAT_GRAY;
    if (image.width > 16384 || image.height > 16384) {
        snprintf(message, 256, "image %ux%u is too large", image.width, image.height);
        png_image_free(&image);
        return NULL;
    }
    unsigned char *buffer = (unsigned char *)malloc(PNG_IMAGE_SIZE(image));
    if (!buffer) { png_image_free(&image); snprintf(message, 256, "out of memory"); return NULL; }
    if (!png_image_finish_read(&image, NULL, buffer, 0, NULL)) {
        snprintf(message, 256, "%s", image.message);
        free(buffer);
        return NULL;
    }
    *width = (int)image.width;
    *height = (int)image.height;
    return buffer;
}
