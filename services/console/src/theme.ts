import {
  createTheme,
  defaultVariantColorsResolver,
  parseThemeColor,
  type VariantColorsResolver,
} from "@mantine/core";

/**
 * Text on tinted backgrounds (light, outline and subtle variants: alerts, light badges, subtle
 * buttons) in the colour's darkest shade darkened further, so it meets WCAG AA (4.5:1) for every
 * colour; Mantine's defaults use mid shades that fall short for green, yellow, orange and grape.
 */
const readableVariants: VariantColorsResolver = (input) => {
  const d = defaultVariantColorsResolver(input);
  if (!["light", "outline", "subtle"].includes(input.variant)) return d;
  const parsed = parseThemeColor({ color: input.color ?? input.theme.primaryColor, theme: input.theme });
  if (!parsed.isThemeColor || parsed.color === "dark") return d;
  const text = `color-mix(in srgb, var(--mantine-color-${parsed.color}-9), black 30%)`;
  return { ...d, color: text, hoverColor: text };
};

export const theme = createTheme({
  primaryColor: "blue",
  primaryShade: 8,
  defaultRadius: "md",
  autoContrast: true,
  variantColorResolver: readableVariants,
  fontFamily: "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif",
});
