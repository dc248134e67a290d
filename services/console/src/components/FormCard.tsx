import { Card, Title } from "@mantine/core";
import type { ReactNode } from "react";

/** A titled form on a card: submitting (Enter or the submit button) calls `onSubmit`, never reloads. */
export function FormCard({
  title,
  onSubmit,
  children,
}: {
  title: string;
  onSubmit: () => void;
  children: ReactNode;
}) {
  return (
    <Card
      withBorder
      component="form"
      aria-label={title}
      onSubmit={(e) => {
        e.preventDefault();
        onSubmit();
      }}
    >
      <Title order={3} size="h4" mb="xs">
        {title}
      </Title>
      {children}
    </Card>
  );
}
