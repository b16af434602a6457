/*
 * fp16.h -- IEEE 754 binary16 <-> binary32 conversion (exact widening).
 */
#ifndef SNN_FP16_H
#define SNN_FP16_H

#include <stdint.h>

/* Returns the float32 value of the half-precision bit pattern h (exact,
 * including subnormals, infinities and NaN). */
float snn_fp16_to_f32(uint16_t h);

/* Returns the half-precision bit pattern nearest to f (round to nearest even). */
uint16_t snn_f32_to_fp16(float f);

#endif
